"""duplex: a full-duplex spoken-conversation runtime for speech language models.

Importing this package stays cheap (no torch, no sound devices): heavy parts load where used.
"""

__version__ = "0.1.0"
