"""A real machine under test, reached over SSH: its address, the checks that keep the harness
off data that is not its own, and the settings a run changes and puts back."""
