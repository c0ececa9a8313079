using System.Diagnostics;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;
using Xunit.Abstractions;

namespace DomainShare.Engine.Tests.AccountsTests;

/// <summary>
/// "Two servers that try to create the same address at the same moment must not both succeed." Two real servers, each
/// the other's peer, start creating the same address together, many times over, with the head start of one of them
/// varied from nothing to a few milliseconds.
/// </summary>
public sealed class AccountCreationRaceTests(ITestOutputHelper output)
{
    private const int Iterations = 240;

    private sealed record Attempt(bool Created, string? ErrorId, string? Message);

    private static async Task<Attempt> TryCreateAsync(AccountServer server, string address)
    {
        try
        {
            await server.CreateAsync(address);
            return new Attempt(true, null, null);
        }
        catch (DomainShareException e)
        {
            return new Attempt(false, e.ErrorId, e.Message);
        }
    }

    /// <summary>Busy-waits: sub-millisecond head starts are the interesting ones, and Task.Delay cannot make them.</summary>
    private static void SpinFor(TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero) return;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < delay) Thread.SpinWait(20);
    }

    [Fact]
    public async Task Two_servers_creating_the_same_address_at_the_same_moment_never_both_succeed()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        a.WithPeers(b.AsPeer);
        b.WithPeers(a.AsPeer);
        var random = new Random(20250601);
        int aWon = 0, bWon = 0, bothRefused = 0, unreachable = 0;
        var headStarts = new List<(double Ms, string Outcome)>();
        var total = Stopwatch.StartNew();

        for (int i = 0; i < Iterations; i++)
        {
            string onA = $"user{i}@example.com";
            string onB = i % 2 == 0 ? onA : $"User{i}@Example.COM"; // the same address in another spelling
            // A head start for one side: none a third of the time, else up to 0.5 ms or up to 8 ms.
            double headStartMs = (i % 3) switch { 0 => 0, 1 => random.NextDouble() * 0.5, _ => random.NextDouble() * 8 };
            bool aFirst = random.Next(2) == 0;

            using var barrier = new Barrier(2);
            Task<Task<Attempt>> Start(AccountServer server, string address, bool late) => Task.Factory.StartNew(() =>
            {
                barrier.SignalAndWait();
                if (late) SpinFor(TimeSpan.FromMilliseconds(headStartMs));
                return TryCreateAsync(server, address); // runs synchronously up to and including the Reserve
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            var startA = Start(a, onA, late: !aFirst);
            var startB = Start(b, onB, late: aFirst);
            var (ra, rb) = (await await startA, await await startB);

            string context = $"iteration {i} ({onA}, {(aFirst ? "A" : "B")} ahead by {headStartMs:F3} ms): A {ra}, B {rb}";
            Assert.False(ra.Created && rb.Created, "both servers created the address: " + context);
            // What the stores hold matches what was reported, and no reservation is left behind.
            Assert.Equal(ra.Created ? AccountState.Active : AccountState.Unknown, a.Store.GetState(onA));
            Assert.Equal(rb.Created ? AccountState.Active : AccountState.Unknown, b.Store.GetState(onA));
            foreach (var refused in new[] { ra, rb }.Where(r => !r.Created))
            {
                Assert.True(refused.ErrorId is ErrorIds.AccountExistsOnPeer or ErrorIds.PeerUnreachable, "unexpected refusal: " + context);
                if (refused.ErrorId == ErrorIds.PeerUnreachable) unreachable++;
            }
            // The loser of a decided race names the winner.
            if (ra.Created && rb.ErrorId == ErrorIds.AccountExistsOnPeer) Assert.Contains($"peer '{a.Name}'", rb.Message);
            if (rb.Created && ra.ErrorId == ErrorIds.AccountExistsOnPeer) Assert.Contains($"peer '{b.Name}'", ra.Message);

            string outcome = ra.Created ? "A won" : rb.Created ? "B won" : "both refused";
            headStarts.Add((headStartMs, outcome));
            if (ra.Created) aWon++;
            else if (rb.Created) bWon++;
            else bothRefused++;
        }
        total.Stop();

        // Over the wire too: no address answers 5 on both servers.
        for (int i = 0; i < Iterations; i += 7)
        {
            string address = $"USER{i}@example.com";
            var onA = await MingerAsk.StatusAsync(a.MingerEndPoint, address);
            var onB = await MingerAsk.StatusAsync(b.MingerEndPoint, address);
            Assert.False(onA == MingerStatus.Exists && onB == MingerStatus.Exists, $"{address} answers 5 on both servers");
            Assert.True(onA != MingerStatus.CannotReceive && onB != MingerStatus.CannotReceive, $"{address}: a reservation was left behind");
        }

        output.WriteLine($"{Iterations} races in {total.Elapsed.TotalSeconds:F1} s: A won {aWon}, B won {bWon}, both refused {bothRefused}, both created 0" +
                         $" (refusals for an unreachable peer: {unreachable}).");
        foreach (var group in headStarts.GroupBy(h => h.Ms == 0 ? "no head start" : h.Ms < 0.5 ? "head start < 0.5 ms" : "head start 0.5–8 ms"))
            output.WriteLine($"  {group.Key}: " + string.Join(", ", group.GroupBy(g => g.Outcome).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}")));
        Assert.Equal(Iterations, aWon + bWon + bothRefused);
        Assert.True(aWon + bWon > 0, "no iteration had a winner: the servers refuse everything");
    }
}
