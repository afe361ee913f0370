"""File container and image loading."""
