"""The voice console: a browser page that talks to the other four services (no model of its own)."""
