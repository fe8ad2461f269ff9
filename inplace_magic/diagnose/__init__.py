"""From a replay's records to a diagnosis: the writer, the saver, the tensor, the skip connection or
branch, and the plain words (README, "How it works").
"""
