"""Built-in skeleton encoders: ST-GCN (the SMIE/PGFA/DVTA variant) and Shift-GCN (pure
PyTorch, single stream or the four-stream ensemble). Importing this package never imports
torch; the modules ``stgcn``, ``shiftgcn`` and ``ensemble`` do."""
