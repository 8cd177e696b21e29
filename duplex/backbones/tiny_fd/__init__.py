"""tiny-fd: the built-in native full-duplex model (issue 4); see docs/tiny-fd.md."""
