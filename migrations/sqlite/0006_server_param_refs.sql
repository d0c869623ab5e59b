-- Data only, no schema change: an op's param references (`previous_forward_pass`, `model`)
-- now name server op ids, like its inputs, instead of the requester's local ids. Ops stored
-- before this point are rewritten through their graph's local ids, so a graph that was
-- training when ravsock was upgraded resumes with the right dependencies.
UPDATE ops SET operation = json_set(operation, '$.params.previous_forward_pass',
    (SELECT target.id FROM ops AS target WHERE target.graph_id = ops.graph_id
        AND target.local_id = json_extract(ops.operation, '$.params.previous_forward_pass')))
WHERE json_type(operation, '$.params.previous_forward_pass') = 'integer';

UPDATE ops SET operation = json_set(operation, '$.params.model',
    (SELECT target.id FROM ops AS target WHERE target.graph_id = ops.graph_id
        AND target.local_id = json_extract(ops.operation, '$.params.model')))
WHERE json_type(operation, '$.params.model') = 'integer';
