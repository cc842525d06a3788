"""mnlib: the reference library of the MobileNet course."""
