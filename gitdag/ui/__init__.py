"""`gitdag ui`: the web page of the graph (server, data, steering, export, static assets)."""
