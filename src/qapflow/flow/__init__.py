"""The YAML flow runner: stages in order, each cached by the digest of its inputs."""
