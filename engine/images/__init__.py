"""Images: reading and fitting them (loading), MNIST-style digit framing (framing), and the
preprocessing contract that is the only code preparing or normalizing a network's input
(contract)."""
