//! The network side: HTTP server, routing, path normalisation, limits and the upstream client.
