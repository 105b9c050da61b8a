"""The byte-moving half of dockertap.

Listens on a socket, dials the backend, frames HTTP/1.1 just enough to know where each
message ends (or where a connection turns into a raw hijacked stream), relays every byte
unchanged, and hands what it saw to sinks as `Exchange` events. Nothing here knows about
Docker's layers; that knowledge lives in `dockertap.analyzers`.
"""
