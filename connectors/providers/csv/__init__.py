"""`csv`: the connector (`connector`: sources, sniffing, checkpoints) and rows to leads (`rows`)."""
