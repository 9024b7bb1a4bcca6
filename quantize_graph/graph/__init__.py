"""GraphDef I/O, name helpers, node builders and the node index: the only code that edits protos."""
