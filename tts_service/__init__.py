"""Text-to-speech service (port 7206)."""
