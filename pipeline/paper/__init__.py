"""Paper originals in numbered off-site boxes: which box holds a document's paper, and each box's life."""
