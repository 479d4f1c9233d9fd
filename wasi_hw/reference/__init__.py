"""Native Python reference drivers (filled in by the I2C host work)."""
