"""Session recordings: the file format, export/import (HAR, mitmproxy flows) and replay."""
