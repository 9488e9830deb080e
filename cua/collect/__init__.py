"""Collection: the roles and the model client, one episode runner, the trajectory store, the
scripted expert, pools of desktops and Ray."""
