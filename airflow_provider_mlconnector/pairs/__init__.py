"""One module per integration pair: field mappings, natural keys and entity specs."""
