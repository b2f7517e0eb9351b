"""Model packages (the registry) and, from part 2 on, endpoints that serve them."""
