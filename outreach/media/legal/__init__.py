"""Legal referral: case packages for counsel."""
