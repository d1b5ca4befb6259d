#!/bin/sh
# A fake agent for the remote tests: one line per attempt in a shared log (to prove each attempt
# ran exactly once), one file per node in its worktree, a success result. Node $SLOW_NODE sleeps
# $SLOW_SECONDS (60) on its first attempt (so a test can kill its worker mid-node); every node
# sleeps $EVERY_SECONDS (0) first (so that nodes are running when a test stops the server). With
# $SHARED_FILE every node also writes shared.txt (so two nodes' merges conflict). Node $LOOP_NODE
# continues (an agent loop) while the counter in $GITDAG_STATE is below 2. The nodes named in
# $SHARED_NODES (space-separated) write shared.txt on their first attempt only.
echo "$GITDAG_NODE_ID $GITDAG_ATTEMPT $$ $GITDAG_REPO" >> "$REMOTE_LOG"
sleep "${EVERY_SECONDS:-0}"
if [ "$GITDAG_NODE_ID" = "${SLOW_NODE:-}" ] && [ "$GITDAG_ATTEMPT" = 1 ]; then
    sleep "${SLOW_SECONDS:-60}"
fi
mkdir -p out
echo "$GITDAG_NODE_ID" > "out/$GITDAG_NODE_ID.txt"
if [ -n "${SHARED_FILE:-}" ]; then echo "$GITDAG_NODE_ID" > shared.txt; fi
case " ${SHARED_NODES:-} " in
    *" $GITDAG_NODE_ID "*) [ "$GITDAG_ATTEMPT" = 1 ] && echo "$GITDAG_NODE_ID" > shared.txt ;;
esac
if [ "$GITDAG_NODE_ID" = "${LOOP_NODE:-}" ]; then
    # An agent loop: continue until the counter in $GITDAG_STATE reaches 2.
    n=$(printf '%s' "${GITDAG_STATE:-}" | sed -n 's/.*"n":\([0-9]*\).*/\1/p')
    n=${n:-0}
    echo "iteration $GITDAG_ITERATION" > "out/$GITDAG_NODE_ID-$n.txt"
    if [ "$n" -lt 2 ]; then
        printf '{"status": "continue", "state": {"n": %d}}' $((n + 1)) > "$GITDAG_RESULT"
        exit 0
    fi
fi
printf '{"status": "success", "summary": "%s ok"}' "$GITDAG_NODE_ID" > "$GITDAG_RESULT"
