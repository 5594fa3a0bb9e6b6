"""A fleet simulator: realistic signed readings from cold-chain trucks, meters, machines."""
