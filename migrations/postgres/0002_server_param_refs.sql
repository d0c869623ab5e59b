-- Data only, no schema change: an op's param references (`previous_forward_pass`, `model`)
-- now name server op ids, like its inputs, instead of the requester's local ids. Ops stored
-- before this point are rewritten through their graph's local ids (as in
-- migrations/sqlite/0006), so a graph that was training when ravsock was upgraded resumes with
-- the right dependencies.
UPDATE ops SET operation = jsonb_set(ops.operation::jsonb, '{params,previous_forward_pass}', to_jsonb(target.id))::text
FROM ops AS target
WHERE target.graph_id = ops.graph_id
    AND jsonb_typeof(ops.operation::jsonb #> '{params,previous_forward_pass}') = 'number'
    AND target.local_id = (ops.operation::jsonb #>> '{params,previous_forward_pass}')::bigint;

UPDATE ops SET operation = jsonb_set(ops.operation::jsonb, '{params,model}', to_jsonb(target.id))::text
FROM ops AS target
WHERE target.graph_id = ops.graph_id
    AND jsonb_typeof(ops.operation::jsonb #> '{params,model}') = 'number'
    AND target.local_id = (ops.operation::jsonb #>> '{params,model}')::bigint;
