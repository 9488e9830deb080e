"""Live desktops: the control server, its client, the local and docker backends."""
