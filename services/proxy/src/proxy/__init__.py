"""proxy: the cluster-internal pull-through cache of the upstream index (SPEC §6). Skeleton for now."""
