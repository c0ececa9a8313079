namespace DomainShare.Bench;

/// <summary>Progress lines on standard error, so standard output holds only the table.</summary>
internal static class Progress
{
    public static void Say(string message) => Console.Error.WriteLine("[bench] " + message);
}
