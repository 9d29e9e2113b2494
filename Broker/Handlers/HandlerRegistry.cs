using Kayak.Protocol;

namespace Kayak.Broker.Handlers;

/// <summary>
/// Maps API keys to handlers. Built from <see cref="ApiVersionTable"/>: every served API must have
/// exactly one handler, so ApiVersions never advertises something the broker cannot answer.
/// </summary>
internal sealed class HandlerRegistry
{
    private readonly IApiHandler?[] _byKey;

    public HandlerRegistry(IEnumerable<IApiHandler> handlers)
    {
        short max = 0;
        foreach (var s in ApiVersionTable.Served) max = Math.Max(max, (short)s.Key);
        _byKey = new IApiHandler?[max + 1];
        foreach (var h in handlers)
        {
            if (ApiVersionTable.Find(h.Key) is null)
                throw new InvalidOperationException($"Handler for {h.Key} is registered but the API is not in ApiVersionTable.Served");
            if (_byKey[(short)h.Key] is not null)
                throw new InvalidOperationException($"Two handlers for {h.Key}");
            _byKey[(short)h.Key] = h;
        }
        foreach (var s in ApiVersionTable.Served)
            if (_byKey[(short)s.Key] is null)
                throw new InvalidOperationException($"{s.Key} is served in ApiVersionTable but has no handler");
    }

    public IApiHandler Get(ApiKey key) => _byKey[(short)key]!;
}
