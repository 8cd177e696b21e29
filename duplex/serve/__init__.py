"""Many conversations on one model: the model host (lanes of one batched model, or one model each),
the WebSocket server `duplex-serve`, and its thin clients."""
