"""Pure value types and errors shared by every veriot package. No I/O, no veriot imports."""
