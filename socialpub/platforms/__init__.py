"""socialpub."""
