"""The Label node: turns a table, a text column or a folder of images into a labeling task for business staff,
and brings their labels back onto the canvas as a table."""
