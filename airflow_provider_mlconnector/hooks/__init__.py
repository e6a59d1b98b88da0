"""One hook per system; each wraps that system's auth on top of the shared HTTP core."""
