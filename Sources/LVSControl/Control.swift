// Control plane.
