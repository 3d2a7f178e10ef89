"""The Data Bank client side: requests, downloads, uploads, retries, and the local caches.

Its public names are exported by `databank`; import them from there.
"""
