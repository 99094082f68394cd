"""HTTP/WebSocket front ends: the native API and one sub-app per vendor dialect."""
