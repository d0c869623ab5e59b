-- UNIQUE (graph_id, local_id) already indexes ops by graph; the separate index only cost a
-- b-tree insert per uploaded op.
DROP INDEX ops_graph;
