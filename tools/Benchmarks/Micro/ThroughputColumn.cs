using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Kayak.Micro;

/// <summary>Payload bytes one invocation of the benchmark processes; the GB/s column divides it by the mean time.</summary>
public interface IBytesPerOperation
{
    long BytesPerOperation { get; }
}

/// <summary>"GB/s" (10^9 bytes per second) for benchmark classes implementing <see cref="IBytesPerOperation"/>.</summary>
public sealed class ThroughputColumn : IColumn
{
    public string Id => "Throughput";
    public string ColumnName => "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Payload gigabytes (10^9 B) processed per second";
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        var mean = report?.ResultStatistics?.Mean; // nanoseconds
        if (mean is null or <= 0) return "-";
        var type = benchmarkCase.Descriptor.Type;
        if (!typeof(IBytesPerOperation).IsAssignableFrom(type)) return "-";
        // A fresh instance with the case's parameters applied tells the size without running setup.
        var instance = (IBytesPerOperation)Activator.CreateInstance(type)!;
        foreach (var p in benchmarkCase.Parameters.Items)
        {
            var prop = type.GetProperty(p.Name, BindingFlags.Public | BindingFlags.Instance);
            if (prop is not null) prop.SetValue(instance, p.Value);
            else type.GetField(p.Name, BindingFlags.Public | BindingFlags.Instance)?.SetValue(instance, p.Value);
        }
        double gbPerSecond = instance.BytesPerOperation / mean.Value; // bytes per ns == GB/s
        return gbPerSecond.ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    }
}
