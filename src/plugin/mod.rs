//! `kubectl weir`: watch and act on releases from the command line.
