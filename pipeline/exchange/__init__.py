"""File formats. The only part of osteoprint that reads or writes files."""
