"""Domain services: every rule and every write transaction of Bright Kitchen lives here."""
