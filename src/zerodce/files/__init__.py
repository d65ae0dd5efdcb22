"""Files: reading and writing images (8 and 16 bit), atomic writes, and enhancing files in batches."""
