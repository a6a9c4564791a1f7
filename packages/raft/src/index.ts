// Public face of @strand/raft (the core lands in the next commits).
export {};
