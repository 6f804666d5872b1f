"""One sweep across a fleet of target devices, scheduled by Ray (imported only for --fleet / --cluster)."""
