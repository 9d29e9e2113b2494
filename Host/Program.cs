using System.Runtime.InteropServices;
using Kayak.Broker;
using Kayak.Broker.Config;
using Microsoft.Extensions.Logging;

// Same convention as kafka-server-start.sh: Broker [server.properties] [--override key=value]...
// With no arguments: 127.0.0.1:9092, data under ./data.
var options = new KafkaBrokerOptions();
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string a = args[i];
        if (a == "--override")
        {
            if (i + 1 >= args.Length) return Fail("--override needs a key=value argument");
            string kv = args[++i];
            int eq = kv.IndexOf('=');
            if (eq <= 0) return Fail($"--override expects key=value, got '{kv}'");
            options.Properties[kv[..eq].Trim()] = kv[(eq + 1)..];
        }
        else if (a == "--add-scram")
        {
            // As kafka-storage format --add-scram: SCRAM-SHA-256=[name=alice,password=alice-secret]; salted at start-up.
            if (i + 1 >= args.Length) return Fail("--add-scram needs a MECHANISM=[name=USER,password=PASSWORD] argument");
            options.ScramCredentials.Add(args[++i]);
        }
        else if (a is "-h" or "--help")
        {
            Console.WriteLine("USAGE: Kayak.Broker [server.properties] [--override property=value]* [--add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]']*");
            return 0;
        }
        else if (a.StartsWith('-'))
        {
            return Fail($"Unknown option {a}. USAGE: Kayak.Broker [server.properties] [--override property=value]*");
        }
        else
        {
            if (!File.Exists(a)) return Fail($"Properties file {a} does not exist");
            foreach (var (k, v) in BrokerConfig.ReadPropertiesFile(a))
                if (!options.Properties.ContainsKey(k)) options.Properties[k] = v;
        }
    }
}
catch (IOException e)
{
    return Fail(e.Message);
}

using var loggerFactory = LoggerFactory.Create(b => b
    .SetMinimumLevel(LogLevel.Information)
    .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "[yyyy-MM-dd HH:mm:ss,fff] "; o.IncludeScopes = false; }));
options.LoggerFactory = loggerFactory;

// kayak.cluster.size=N (issue 14): N brokers in this process, node ids 1..N, consecutive ports, <log.dirs>/broker-<id>.
int clusterSize;
try
{
    clusterSize = new BrokerConfig(options.Properties).ClusterSize;
}
catch (ConfigException e)
{
    return Fail(e.Message);
}
IAsyncDisposable running;
try
{
    if (clusterSize > 1)
    {
        var clusterOptions = new Kayak.Broker.Cluster.KafkaClusterOptions { Brokers = clusterSize, LoggerFactory = loggerFactory };
        foreach (var (k, v) in options.Properties) clusterOptions.Properties[k] = v;
        foreach (var spec in options.ScramCredentials) clusterOptions.ScramCredentials.Add(spec);
        var cluster = new Kayak.Broker.Cluster.KafkaCluster(clusterOptions);
        running = cluster;
        await cluster.StartAsync();
    }
    else
    {
        var broker = new KafkaBroker(options);
        running = broker;
        await broker.StartAsync();
    }
}
catch (ConfigException e)
{
    return Fail(e.Message);
}
catch (Kayak.Storage.ConfigException e)
{
    return Fail(e.Message);
}
catch (InvalidOperationException e)
{
    return Fail(e.Message);
}
catch (ArgumentException e)
{
    return Fail(e.Message); // --add-scram
}
catch (Kayak.Storage.StorageErrorException e)
{
    // A locked, unreadable or inconsistent log dir: Kafka logs "Fatal error during KafkaServer startup" and exits 1.
    return Fail(e.Message);
}

await using var stopOnExit = running;
// kayak.control.listener (issue 14): the HTTP control and fault-injection endpoint, off unless set.
Microsoft.AspNetCore.Builder.WebApplication? control = null;
if (new BrokerConfig(options.Properties).GetString("kayak.control.listener") is { Length: > 0 } controlUrl)
{
    try
    {
        control = await Kayak.Host.ControlEndpoint.StartAsync(controlUrl, running as Kayak.Broker.Cluster.KafkaCluster, running as KafkaBroker, loggerFactory);
    }
    catch (Exception e) when (e is IOException or UriFormatException or InvalidOperationException)
    {
        return Fail($"kayak.control.listener {controlUrl}: {e.Message}");
    }
}
await using var stopControl = control;
using var memoryLog = Kayak.Host.MemoryLog.Start(loggerFactory);
// SIGINT/SIGTERM: stop accepting, finish in-flight requests, flush, close files.
var stop = new TaskCompletionSource();
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
await stop.Task;
return 0;

static int Fail(string message)
{
    Console.Error.WriteLine("ERROR: " + message);
    return 1;
}
