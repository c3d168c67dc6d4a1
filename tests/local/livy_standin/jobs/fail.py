"""A tiny PySpark application that fails after its SparkContext started, so spark-submit exits
non-zero and the batch must end `dead`."""

from pyspark.sql import SparkSession


def main() -> None:
    spark = SparkSession.builder.getOrCreate()
    spark.range(3).count()
    raise RuntimeError("livy-standin test job failed on purpose")


if __name__ == "__main__":
    main()
