#!/bin/sh
# The compose stack's init step: creates its accounts once, each token in /tokens/<name>
# (a volume that only the stack's containers mount, readable by their user alone). Run again,
# it keeps the tokens it made; an account whose token file was lost is reported, not replaced.
set -eu
umask 077
for account in requester:requester provider:provider; do
  name=${account%%:*}
  role=${account#*:}
  if [ -s "/tokens/$name" ]; then
    echo "account $name: token kept in /tokens/$name"
    continue
  fi
  ravsock token create --name "$name" --role "$role" > "/tokens/$name.new"
  mv "/tokens/$name.new" "/tokens/$name"
  echo "account $name ($role): token written to /tokens/$name"
done
