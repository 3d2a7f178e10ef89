"""The chaos harness: the whole system on loopback, killed, restarted and starved of Data Bank
from a seed, then checked for lost runs, duplicate pointers, drift and leaked secrets
(`python -m tests.reliability`, `make reliability`; `test_short.py` runs a short one)."""
