using Microsoft.Extensions.Logging;

namespace Kayak.Storage.Tests;

/// <summary>Keeps every log line with its level (the storage tests assert what recovery and reads say).</summary>
internal sealed class CapturingLogger : ILogger
{
    private readonly List<(LogLevel Level, string Text)> _lines = [];
    public IReadOnlyList<string> Warnings { get { lock (_lines) return _lines.Where(l => l.Level >= LogLevel.Warning).Select(l => l.Text).ToList(); } }
    public IReadOnlyList<string> Infos { get { lock (_lines) return _lines.Where(l => l.Level == LogLevel.Information).Select(l => l.Text).ToList(); } }
    public void Clear() { lock (_lines) _lines.Clear(); }
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines) _lines.Add((logLevel, formatter(state, exception)));
    }
}
