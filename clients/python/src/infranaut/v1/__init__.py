"""Generated from proto/infranaut/v1 by scripts/generate-python-protos.sh; do not edit."""
