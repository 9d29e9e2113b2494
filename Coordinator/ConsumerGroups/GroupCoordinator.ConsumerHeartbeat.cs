using Kayak.Coordinator.ConsumerGroups;
using Kayak.Protocol;
using Kayak.Protocol.Messages;

namespace Kayak.Coordinator;

/// <summary>Looks a topic up by name for the KIP-848 coordinator: its id and partition count, false when it does not exist.</summary>
public delegate bool ConsumerTopicResolver(string name, out Uuid topicId, out int partitionCount);

/// <summary>
/// Which topics a regex subscription may resolve to under ACLs: Kafka 4.0's
/// GroupMetadataManager.filterTopicDescribeAuthorizedTopics asks the authorizer for DESCRIBE on every topic the group's
/// regexes matched, with the context of the member whose heartbeat resolves them, and drops the denied ones from every
/// regex. The broker implements it with its authorizer; without one the coordinator is given none and filters nothing.
/// </summary>
public interface IRegexTopicAuthorizer
{
    /// <param name="refCount">How many of the group's regexes matched the topic (the Action's resourceReferenceCount).</param>
    bool MayDescribe(string topic, int refCount);
}

/// <summary>
/// ConsumerGroupHeartbeat (KIP-848), following Kafka's GroupMetadataManager.consumerGroupHeartbeat: validate, find or
/// create the group and member, update the member's metadata and the group's subscription metadata (bumping the
/// group epoch when either changed), recompute the target assignment with the server-side assignor when the group
/// epoch is ahead of the assignment epoch, reconcile the member towards its target (CurrentAssignmentBuilder), write
/// every change as records, and answer from the state their replay produced.
/// </summary>
public sealed partial class GroupCoordinator
{
    /// <param name="topicNames">Every topic name, for regex subscriptions (KIP-848 SubscribedTopicRegex); read only when
    /// some member subscribes by regex, on each heartbeat, so topics created or deleted since are picked up.</param>
    /// <param name="regexAuthorizer">Filters the topics the regexes matched (DESCRIBE for this member's principal); null: none.</param>
    public ConsumerGroupHeartbeatResponse ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest request, short version, ClientInfo client,
        ConsumerTopicResolver topics, IEnumerable<string>? topicNames = null, IRegexTopicAuthorizer? regexAuthorizer = null)
    {
        if (Unavailable(request.GroupId) is var unavailable && unavailable != ErrorCode.None) return HeartbeatError(unavailable, null);
        if (ValidateHeartbeat(request, version) is { } invalid) return invalid;

        ClassicGroup? group;
        if (request.MemberEpoch == 0) group = _groups.GetOrAdd(request.GroupId, static id => new ClassicGroup(id));
        else if (!_groups.TryGetValue(request.GroupId, out group))
            return HeartbeatError(ErrorCode.GroupIdNotFound, $"Consumer group {request.GroupId} not found.");

        lock (group.Lock)
        {
            if (group.State == GroupState.Dead) return HeartbeatError(ErrorCode.CoordinatorNotAvailable, null);
            // Kafka's getOrMaybeCreateConsumerGroup: an empty classic group becomes a consumer group (offsets kept,
            // whatever group.consumer.migration.policy says); one with members is upgraded online when the member
            // joins (epoch 0) and group.consumer.migration.policy allows it (GroupCoordinator.Migration.cs).
            if (group.Consumer is null && (group.MemberList.Count > 0 || group.PendingMembers.Count > 0))
            {
                if (request.MemberEpoch != 0)
                    return HeartbeatError(ErrorCode.GroupIdNotFound, $"Group {request.GroupId} is not a consumer group.");
                if (group.MemberList.Count == 0)
                {
                    // Only MEMBER_ID_REQUIRED handshakes outstanding: nobody is in the group yet.
                    foreach (var t in group.PendingMembers.Values) t.Dispose();
                    group.PendingMembers.Clear();
                }
                else if (UpgradeToConsumerGroup(group, topics) is { } refused) return refused;
            }
            var cg = group.Consumer;
            if (cg is null && request.MemberEpoch != 0)
                return HeartbeatError(ErrorCode.GroupIdNotFound, $"Consumer group {request.GroupId} not found.");
            cg ??= new ConsumerGroupState(); // state itself comes from the replay of the records below

            if (request.MemberEpoch < 0) return ConsumerLeave(group, cg, request);
            if (group.Unwritten is null)
                return ConsumerJoinOrHeartbeat(group, cg, request, version, client, topics, topicNames ?? [], regexAuthorizer);
            // An upgrade applied in memory: the join's write carries it, else it is undone.
            try
            {
                var response = ConsumerJoinOrHeartbeat(group, cg, request, version, client, topics, topicNames ?? [], regexAuthorizer);
                // A join that answered without writing (it always writes the new member) cannot leave the conversion unwritten.
                if (group.Unwritten is not null && response.ErrorCode == 0 && Write(group, []) is var refused and not ErrorCode.None)
                    response = HeartbeatError(refused, null);
                return response;
            }
            finally { FinishUpgrade(group); }
        }
    }

    /// <summary>Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid, INVALID_REQUEST with its messages.</summary>
    private ConsumerGroupHeartbeatResponse? ValidateHeartbeat(ConsumerGroupHeartbeatRequest r, short version)
    {
        string? problem = null;
        if (r.GroupId.Length == 0) problem = "GroupId can't be empty.";
        else if (r.InstanceId is { Length: 0 }) problem = "InstanceId can't be empty.";
        else if (r.RackId is { Length: 0 }) problem = "RackId can't be empty.";
        // KIP-1082: from v1 the client generates its member id; v0 gets one from the coordinator on join.
        else if (r.MemberId.Length == 0 && (version >= 1 || r.MemberEpoch != 0)) problem = "MemberId can't be empty.";
        else if (r.MemberEpoch == 0)
        {
            if (r.RebalanceTimeoutMs == -1) problem = "RebalanceTimeoutMs must be provided in first request.";
            else if (r.TopicPartitions is { Count: > 0 }) problem = "TopicPartitions must be empty when (re-)joining.";
            else if (r.SubscribedTopicNames is null && string.IsNullOrEmpty(r.SubscribedTopicRegex))
                problem = "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.";
        }
        else if (r.MemberEpoch == ConsumerGroupState.LeaveStaticEpoch && r.InstanceId is null) problem = "InstanceId can't be null.";
        else if (r.MemberEpoch < ConsumerGroupState.LeaveStaticEpoch) problem = "MemberEpoch is invalid.";
        if (problem is not null) return HeartbeatError(ErrorCode.InvalidRequest, problem);

        if (r.ServerAssignor is not null && !_assignors.Contains(r.ServerAssignor))
            return HeartbeatError(ErrorCode.UnsupportedAssignor,
                $"ServerAssignor {r.ServerAssignor} is not supported. Supported assignors: {string.Join(", ", _assignors)}.");
        // Kafka's throwIfRegularExpressionIsInvalid. An empty regex means "no regex" (librdkafka 2.16 sends it beside
        // topic names).
        if (r.SubscribedTopicRegex is { Length: > 0 } regex && TopicRegex.TryCompile(regex, out var error) is null)
            return HeartbeatError(ErrorCode.InvalidRegularExpression, error);
        return null;
    }

    private static ConsumerGroupHeartbeatResponse HeartbeatError(ErrorCode error, string? message) =>
        new ConsumerGroupHeartbeatResponse().SetError(new(error, message));

    private ConsumerGroupHeartbeatResponse ConsumerLeave(ClassicGroup group, ConsumerGroupState cg, ConsumerGroupHeartbeatRequest request)
    {
        ConsumerMember? member;
        if (request.InstanceId is null)
        {
            if (!cg.Members.TryGetValue(request.MemberId, out member))
                return HeartbeatError(ErrorCode.UnknownMemberId, $"Member {request.MemberId} is not a member of group {group.GroupId}.");
        }
        else
        {
            if (!cg.StaticMembers.TryGetValue(request.InstanceId, out var id) || !cg.Members.TryGetValue(id, out member))
                return HeartbeatError(ErrorCode.UnknownMemberId, $"Instance id {request.InstanceId} is unknown.");
            if (id != request.MemberId)
                // Kafka's throwIfInstanceIdIsFenced wording.
                return HeartbeatError(ErrorCode.FencedInstanceId,
                    $"Static member {request.MemberId} with instance id {request.InstanceId} was fenced by member {id}.");
        }

        var records = new List<CoordinatorRecord>();
        if (request.MemberEpoch == ConsumerGroupState.LeaveStaticEpoch)
            // A static member leaving temporarily keeps its assignment for its return under the same instance id;
            // its session timeout still runs and removes it if it does not come back.
            records.Add(CurrentAssignmentRecord(group.GroupId, member.MemberId, new CurrentAssignmentBuilder.Result(
                ConsumerGroupState.LeaveStaticEpoch, member.PreviousMemberEpoch, member.State, member.Assigned, TopicPartitions.Empty)));
        else if (RemoveConsumerMember(group, cg, member.MemberId) is var removed and not ErrorCode.None)
            // KIP-848 online downgrade: when only classic members remain, this converts the group to a classic one.
            return HeartbeatError(removed, null);
        if (records.Count > 0 && Write(group, records) is var refused and not ErrorCode.None) return HeartbeatError(refused, null);
        return new ConsumerGroupHeartbeatResponse { MemberId = request.MemberId, MemberEpoch = request.MemberEpoch };
    }

    private ConsumerGroupHeartbeatResponse ConsumerJoinOrHeartbeat(ClassicGroup group, ConsumerGroupState cg,
        ConsumerGroupHeartbeatRequest request, short version, ClientInfo client, ConsumerTopicResolver topics, IEnumerable<string> topicNames,
        IRegexTopicAuthorizer? regexAuthorizer)
    {
        string groupId = group.GroupId;
        string memberId = request.MemberId.Length > 0 ? request.MemberId : Guid.NewGuid().ToString(); // v0 join only
        var owned = request.TopicPartitions is null
            ? null
            : TopicPartitions.From(request.TopicPartitions.Select(t => (t.TopicId, (IEnumerable<int>)t.Partitions)));
        var records = new List<CoordinatorRecord>();
        string? replaced = null; // a static member's previous incarnation, taken over by this one
        bool groupCreated = group.Consumer is null;

        cg.Members.TryGetValue(memberId, out var existing);
        if (request.MemberEpoch == 0)
        {
            if (request.InstanceId is not null && cg.StaticMembers.TryGetValue(request.InstanceId, out var staticId) && staticId != memberId)
            {
                var old = cg.Members[staticId];
                if (!old.IsStaticLeft)
                    // Kafka's throwIfInstanceIdIsUnreleased wording.
                    return HeartbeatError(ErrorCode.UnreleasedInstanceId, $"Static member {memberId} with instance id {request.InstanceId} " +
                        $"cannot join the group because the instance id is owned by {staticId} member.");
                replaced = staticId;
            }
        }
        else
        {
            if (existing is null) return HeartbeatError(ErrorCode.UnknownMemberId, $"Member {memberId} is not a member of group {groupId}.");
            if (existing.InstanceId is not null && request.InstanceId is not null && existing.InstanceId != request.InstanceId)
                return HeartbeatError(ErrorCode.FencedInstanceId, $"Member {memberId} has instance id {existing.InstanceId}.");
            // Kafka's throwIfMemberEpochIsInvalid: an epoch ahead of ours, or behind it other than the previous epoch
            // with no more than what the member had, is a zombie.
            if (request.MemberEpoch > existing.MemberEpoch
                || (request.MemberEpoch < existing.MemberEpoch
                    && (request.MemberEpoch != existing.PreviousMemberEpoch || owned is null || !owned.IsSubsetOf(existing.Assigned))))
                return HeartbeatError(ErrorCode.FencedMemberEpoch, $"The consumer group member has a smaller or larger member epoch ({request.MemberEpoch}) than the one known by the group coordinator ({existing.MemberEpoch}).");
        }

        // Kafka's throwIfConsumerGroupIsFull: group.consumer.max.size bounds the members; a known one may stay, and a
        // static member coming back under its instance id takes its old place rather than a new one.
        if (existing is null && replaced is null && cg.Members.Count >= _options.ConsumerGroupMaxSize)
            return HeartbeatError(ErrorCode.GroupMaxSizeReached,
                $"The consumer group has reached its maximum capacity of {_options.ConsumerGroupMaxSize} members.");

        // The member as it is to be: its current assignment (a replaced static member's, or none for a new one) and
        // its metadata with every field the request carries.
        var basis = existing ?? (replaced is not null ? cg.Members[replaced] : null);
        var proposed = new ConsumerMember(memberId)
        {
            InstanceId = request.InstanceId ?? basis?.InstanceId,
            RackId = request.RackId ?? basis?.RackId,
            ClientId = client.ClientId,
            ClientHost = client.ClientHost,
            SubscribedTopicNames = request.SubscribedTopicNames is { } names
                ? names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList()
                : basis?.SubscribedTopicNames ?? new(),
            SubscribedTopicRegex = request.SubscribedTopicRegex is { } regex ? (regex.Length == 0 ? null : regex) : basis?.SubscribedTopicRegex,
            RebalanceTimeoutMs = request.RebalanceTimeoutMs != -1 ? request.RebalanceTimeoutMs : basis?.RebalanceTimeoutMs ?? -1,
            ServerAssignor = request.ServerAssignor ?? basis?.ServerAssignor,
            MemberEpoch = existing?.MemberEpoch ?? 0,
            PreviousMemberEpoch = existing?.PreviousMemberEpoch ?? 0,
            State = existing?.State ?? ConsumerMemberState.Stable,
            Assigned = basis?.Assigned ?? TopicPartitions.Empty,
            PendingRevocation = existing?.PendingRevocation ?? TopicPartitions.Empty,
        };

        if (replaced is not null) AddMemberRemoval(records, groupId, replaced);
        bool bump = false;
        if (existing is null || !SameMetadata(existing, proposed))
        {
            records.Add(MemberMetadataRecord(groupId, proposed));
            bump = basis is null || !basis.SubscribedTopicNames.SequenceEqual(proposed.SubscribedTopicNames)
                || basis.SubscribedTopicRegex != proposed.SubscribedTopicRegex;
        }

        var next = PlanMember(cg, groupId, proposed, replaced, bump || groupCreated, owned, topics, topicNames, records, regexAuthorizer);
        bool assignmentChanged = AddAssignmentIfChanged(records, groupId, memberId, existing, next);

        if (records.Count > 0 && Write(group, records) is var refused and not ErrorCode.None)
        {
            // A group created for this join whose first records were refused is not kept (Kafka reverts the timeline).
            if (group.Consumer is null) RemoveIfUnused(group);
            return HeartbeatError(refused, null);
        }

        var member = group.Consumer!.Members[memberId];
        long now = NowMs;
        member.RevocationDeadline = member.State == ConsumerMemberState.UnrevokedPartitions
            ? (member.RevocationDeadline >= 0 ? member.RevocationDeadline : now + Math.Max(member.RebalanceTimeoutMs, 0))
            : -1;
        ScheduleConsumerSession(groupId, member, now + _options.ConsumerGroupSessionTimeoutMs);

        var response = new ConsumerGroupHeartbeatResponse
        {
            MemberId = memberId,
            MemberEpoch = member.MemberEpoch,
            HeartbeatIntervalMs = _options.ConsumerGroupHeartbeatIntervalMs,
        };
        // Kafka sends the assignment on join, on a full request and whenever the member changed.
        if (request.MemberEpoch == 0 || owned is not null || assignmentChanged || records.Count > 0)
        {
            var assignment = new ConsumerGroupHeartbeatResponse.AssignmentData();
            foreach (var (id, set) in member.Assigned.ByTopic)
                assignment.TopicPartitions.Add(new ConsumerGroupHeartbeatResponse.TopicPartitions { TopicId = id, Partitions = set.ToList() });
            response.Assignment = assignment;
        }
        _ = version;
        return response;
    }

    /// <summary>
    /// Adds the member's ConsumerGroupCurrentMemberAssignment record when its next assignment (epochs, state, assigned,
    /// pending revocation) differs from <paramref name="existing"/>'s (always for a new member); true when it did.
    /// </summary>
    private static bool AddAssignmentIfChanged(List<CoordinatorRecord> records, string groupId, string memberId,
        ConsumerMember? existing, CurrentAssignmentBuilder.Result next)
    {
        bool changed = existing is null || next.MemberEpoch != existing.MemberEpoch || next.PreviousMemberEpoch != existing.PreviousMemberEpoch
            || next.State != existing.State || !next.Assigned.SetEquals(existing.Assigned) || !next.PendingRevocation.SetEquals(existing.PendingRevocation);
        if (changed) records.Add(CurrentAssignmentRecord(groupId, memberId, next));
        return changed;
    }

    /// <summary>
    /// Steps 2 and 3 of Kafka's consumerGroupHeartbeat (and of classicGroupJoinToConsumerGroup) for
    /// <paramref name="proposed"/>: the group's subscription metadata and epoch (bumped when <paramref name="bump"/> or the
    /// metadata changed), the target assignment when the group epoch is ahead of it, and the member's next assignment
    /// (CurrentAssignmentBuilder). Adds the records to <paramref name="records"/>; state changes only by their replay.
    /// </summary>
    private CurrentAssignmentBuilder.Result PlanMember(ConsumerGroupState cg, string groupId, ConsumerMember proposed, string? replaced,
        bool bump, TopicPartitions? owned, ConsumerTopicResolver topics, IEnumerable<string> topicNames, List<CoordinatorRecord> records,
        IRegexTopicAuthorizer? regexAuthorizer)
    {
        string memberId = proposed.MemberId;
        // Everyone the group will have after this heartbeat.
        var members = new Dictionary<string, ConsumerMember>(cg.Members, StringComparer.Ordinal);
        if (replaced is not null) members.Remove(replaced);
        members[memberId] = proposed;

        var resolved = ResolveRegexes(cg, members.Values, topicNames, regexAuthorizer);
        var metadata = SubscriptionMetadata(members.Values, resolved, topics);
        if (!SameSubscriptionMetadata(metadata, cg.SubscriptionMetadata))
        {
            records.Add(SubscriptionMetadataRecord(groupId, metadata));
            bump = true;
        }
        int groupEpoch = cg.GroupEpoch;
        if (bump)
        {
            groupEpoch++;
            records.Add(GroupEpochRecord(groupId, groupEpoch));
        }

        // The target assignment of the group epoch (Kafka's TargetAssignmentBuilder), when it is behind.
        int targetEpoch = cg.AssignmentEpoch;
        TopicPartitions target;
        var previousTargets = new Dictionary<string, TopicPartitions>(cg.Target, StringComparer.Ordinal);
        if (replaced is not null && previousTargets.Remove(replaced, out var inherited)) previousTargets[memberId] = inherited;
        if (groupEpoch > cg.AssignmentEpoch)
        {
            var assignorMembers = new List<AssignorMember>(members.Count);
            foreach (var m in members.Values)
            {
                var ids = new HashSet<Uuid>();
                foreach (var n in SubscribedNames(m, resolved))
                    if (metadata.TryGetValue(n, out var t)) ids.Add(t.TopicId);
                assignorMembers.Add(new AssignorMember(m.MemberId, ids, m.InstanceId));
            }
            var counts = metadata.Values.ToDictionary(t => t.TopicId, t => t.NumPartitions);
            var newTargets = ConsumerAssignors.Assign(ConsumerAssignors.Preferred(members.Values, _assignors), assignorMembers, counts, previousTargets);
            foreach (var (id, t) in newTargets)
                if (!previousTargets.TryGetValue(id, out var before) || !before.SetEquals(t) || id == memberId && replaced is not null)
                    records.Add(TargetMemberRecord(groupId, id, t));
            records.Add(TargetEpochRecord(groupId, groupEpoch));
            targetEpoch = groupEpoch;
            target = newTargets[memberId];
        }
        else
        {
            target = previousTargets.TryGetValue(memberId, out var t) ? t : TopicPartitions.Empty;
            if (replaced is not null) records.Add(TargetMemberRecord(groupId, memberId, target));
        }

        return CurrentAssignmentBuilder.Build(proposed, targetEpoch, target, owned,
            (t, p) => cg.Owners.TryGetValue((t, p), out var owner) && owner != memberId && owner != replaced);
    }

    private static bool SameMetadata(ConsumerMember a, ConsumerMember b) =>
        a.InstanceId == b.InstanceId && a.RackId == b.RackId && a.ClientId == b.ClientId && a.ClientHost == b.ClientHost
        && a.RebalanceTimeoutMs == b.RebalanceTimeoutMs && a.ServerAssignor == b.ServerAssignor
        && a.SubscribedTopicNames.SequenceEqual(b.SubscribedTopicNames) && a.SubscribedTopicRegex == b.SubscribedTopicRegex
        && (a.Classic is null ? b.Classic is null : a.Classic.SameAs(b.Classic));

    /// <summary>
    /// The topics each distinct regex of the members matches now (Kafka's resolved regular expressions, internal
    /// topics excluded). Evaluated on every heartbeat against the current topics, so a topic created or deleted
    /// since changes the group's subscription metadata, which bumps the group epoch. Compiled regexes are cached in
    /// the group and pruned to those still in use.
    /// </summary>
    private static Dictionary<string, List<string>> ResolveRegexes(ConsumerGroupState cg, IEnumerable<ConsumerMember> members,
        IEnumerable<string> topicNames, IRegexTopicAuthorizer? authorizer)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var m in members)
            if (m.SubscribedTopicRegex is { } r) result.TryAdd(r, new List<string>());
        foreach (var cached in cg.RegexCache.Keys.ToArray())
            if (!result.ContainsKey(cached)) cg.RegexCache.Remove(cached);
        if (result.Count == 0) return result;
        var compiled = new List<(System.Text.RegularExpressions.Regex Regex, List<string> Into)>(result.Count);
        foreach (var (pattern, into) in result)
        {
            if (!cg.RegexCache.TryGetValue(pattern, out var regex))
            {
                // Validated on the request that set it; one replayed from an older log may not compile: matches nothing.
                regex = TopicRegex.TryCompile(pattern, out _);
                if (regex is null) continue;
                cg.RegexCache[pattern] = regex;
            }
            compiled.Add((regex, into));
        }
        foreach (var name in topicNames)
            foreach (var (regex, into) in compiled)
                if (TopicRegex.Matches(regex, name)) into.Add(name);
        if (authorizer is not null) RemoveUndescribable(result, authorizer);
        return result;
    }

    /// <summary>filterTopicDescribeAuthorizedTopics: each matched topic asked once, a denied one leaves every regex.</summary>
    private static void RemoveUndescribable(Dictionary<string, List<string>> resolved, IRegexTopicAuthorizer authorizer)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var matched in resolved.Values)
            foreach (var name in matched)
                counts[name] = counts.GetValueOrDefault(name) + 1;
        HashSet<string>? denied = null;
        foreach (var (name, count) in counts)
            if (!authorizer.MayDescribe(name, count)) (denied ??= new(StringComparer.Ordinal)).Add(name);
        if (denied is null) return;
        foreach (var matched in resolved.Values) matched.RemoveAll(denied.Contains);
    }

    /// <summary>A member's topics by name: those it names and those its regex matches.</summary>
    private static IEnumerable<string> SubscribedNames(ConsumerMember m, Dictionary<string, List<string>> resolved)
    {
        foreach (var n in m.SubscribedTopicNames) yield return n;
        if (m.SubscribedTopicRegex is { } r && resolved.TryGetValue(r, out var matched))
            foreach (var n in matched) yield return n;
    }

    /// <summary>Every topic some member subscribes to (by name or regex) that exists, with its id and partition count.</summary>
    private static Dictionary<string, SubscribedTopic> SubscriptionMetadata(IEnumerable<ConsumerMember> members,
        Dictionary<string, List<string>> resolved, ConsumerTopicResolver topics)
    {
        var result = new Dictionary<string, SubscribedTopic>(StringComparer.Ordinal);
        foreach (var m in members)
            foreach (var name in SubscribedNames(m, resolved))
                if (!result.ContainsKey(name) && topics(name, out var id, out int count) && count > 0)
                    result[name] = new SubscribedTopic(id, name, count);
        return result;
    }

    private static bool SameSubscriptionMetadata(Dictionary<string, SubscribedTopic> a, Dictionary<string, SubscribedTopic> b)
    {
        if (a.Count != b.Count) return false;
        foreach (var (name, t) in a)
            if (!b.TryGetValue(name, out var o) || o != t) return false;
        return true;
    }

    // ------------------------------------------------------------------ session and rebalance timeouts

    private void ScheduleConsumerSession(string groupId, ConsumerMember member, long deadline)
    {
        member.SessionDeadline = deadline;
        long due = member.RevocationDeadline >= 0 ? Math.Min(deadline, member.RevocationDeadline) : deadline;
        if (member.ClassicDeadline >= 0) due = Math.Min(due, member.ClassicDeadline);
        var delay = TimeSpan.FromMilliseconds(Math.Max(0, due - NowMs));
        if (member.Timer is null)
            member.Timer = _time.CreateTimer(static s =>
            {
                var (owner, group, m) = ((GroupCoordinator, string, ConsumerMember))s!;
                owner.OnConsumerMemberTimer(group, m);
            }, (this, groupId, member), delay, Timeout.InfiniteTimeSpan);
        else member.Timer.Change(delay, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// A member's session expired, or it did not revoke within its rebalance timeout: Kafka fences it
    /// (consumerGroupFenceMember), removing it and bumping the group epoch so the others take over its partitions.
    /// </summary>
    private void OnConsumerMemberTimer(string groupId, ConsumerMember member)
    {
        if (_disposed || !_groups.TryGetValue(groupId, out var group)) return;
        lock (group.Lock)
        {
            var cg = group.Consumer;
            if (cg is null || !cg.Members.TryGetValue(member.MemberId, out var current) || current != member) return;
            long now = NowMs;
            bool revocationExpired = member.RevocationDeadline >= 0 && now >= member.RevocationDeadline
                && member.State == ConsumerMemberState.UnrevokedPartitions;
            revocationExpired |= member.ClassicDeadline >= 0 && now >= member.ClassicDeadline;
            if (now < member.SessionDeadline && !revocationExpired)
            {
                ScheduleConsumerSession(groupId, member, member.SessionDeadline);
                return;
            }
            // A refused write leaves the member in place; try again a heartbeat interval later.
            if (RemoveConsumerMember(group, cg, member.MemberId) != ErrorCode.None) ScheduleConsumerSession(groupId, member, now + _options.ConsumerGroupHeartbeatIntervalMs);
        }
    }
}
